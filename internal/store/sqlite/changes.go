package sqlite

// positionQuery reads the directory change log's position: the last seq
// handed out (migration 020), which SQLite's one writer commits in order.
const positionQuery = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'directory_changes'), 0)`
