-- Gig matching (the marketplace plugin plugins/matching, loaded only with
-- GIGVORA_PLUGINS_ALLOW=matching; the tables stay empty otherwise). A gig is a chat message in
-- the gig channel whose text starts with "Gig:" and carries #skill tags: one row per message
-- (message_id is unique, so a redelivered hook records it once) and one gig_skills row per tag.
-- Freelancers' skill subscriptions are kept per user with the roles of their last subscribe
-- (a match goes only to someone who may read the gig's channel).
CREATE TABLE gigs (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    channel_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    title TEXT NOT NULL,
    skills TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);
CREATE INDEX gigs_recent ON gigs (created_at, id);

CREATE TABLE gig_skills (
    skill TEXT NOT NULL,
    gig_id TEXT NOT NULL REFERENCES gigs (id) ON DELETE CASCADE,
    PRIMARY KEY (skill, gig_id)
);
CREATE INDEX gig_skills_gig ON gig_skills (gig_id);

CREATE TABLE gig_subscribers (
    user_id TEXT PRIMARY KEY,
    roles TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);

CREATE TABLE gig_subscriptions (
    skill TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES gig_subscribers (user_id) ON DELETE CASCADE,
    PRIMARY KEY (skill, user_id)
);
CREATE INDEX gig_subscriptions_user ON gig_subscriptions (user_id);
