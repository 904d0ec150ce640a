-- Channel categories: how clients group channels in their channel list ("Community", "Work",
-- "Support"...). NULL means uncategorised. Set at creation (POST /api/v1/channels), changed by
-- admins (PATCH /api/v1/channels/{id}) and by seed packs.
ALTER TABLE channels ADD COLUMN category TEXT;
