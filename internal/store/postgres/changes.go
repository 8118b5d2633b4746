package postgres

// positionQuery reads the directory change log's position: the highest seq
// committed and visible to the reading transaction (migration 008). A
// lower seq may still commit after it (sequences are handed out before
// commit); the change notifications cover such a change (notify.go).
const positionQuery = `SELECT COALESCE(max(seq), 0) FROM directory_changes`
