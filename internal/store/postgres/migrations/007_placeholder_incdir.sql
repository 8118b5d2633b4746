-- Placeholder kept by the incdir branch so that migration numbers stay
-- contiguous while another branch holds 007: drop it at merge and give
-- 008_directory_changes.sql the next free number.
SELECT 1;
