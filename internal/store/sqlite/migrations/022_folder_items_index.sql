-- folder_items_by_folder (folder_id, received_at) served only the order of
-- the admin's folder listing; folder_items_by_uid (folder_id, uid) finds
-- the same rows, which the listing sorts. Every item filed paid for it: a
-- submission files a copy into its sender's Sent Items, so a commit group
-- wrote one more scattered index page per sender (BENCHMARKS.md).
DROP INDEX folder_items_by_folder;
