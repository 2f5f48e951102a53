-- The kind of a one-use code: an authorization code (`redirect`) or an
-- approved device authorization (`device`), which earlier versions marked
-- by the device grant's URN in `redirect_uri`.
ALTER TABLE authorization_codes ADD COLUMN kind TEXT NOT NULL DEFAULT 'redirect';
UPDATE authorization_codes SET kind = 'device', redirect_uri = ''
    WHERE redirect_uri = 'urn:ietf:params:oauth:grant-type:device_code';
