#!/usr/bin/env bash
# A small seed corpus for each fuzz target, written to $1/<target>/.
set -euo pipefail
out="$1"
mkdir -p "$out"/{params,registration,redirect_uri,openapi,client_metadata_document}
printf '%s' 'response_type=code&client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge=abc&code_challenge_method=S256&state=s&resource=https%3A%2F%2Fa%2Fmcp&resource=x' > "$out/params/authorize"
printf '%s' 'grant_type=refresh_token&refresh_token=xmcp_rt_abc&client_id=c&scope=tweet.read+users.read' > "$out/params/token"
printf '%s' '{"redirect_uris":["http://127.0.0.1:3000/cb","cursor://cb"],"client_name":"Claude","grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none","scope":"tweet.read offline_access"}' > "$out/registration/dcr"
printf '%s' '{"client_name":"TV","grant_types":["urn:ietf:params:oauth:grant-type:device_code"]}' > "$out/registration/device"
printf 'http://127.0.0.1/cb\0http://127.0.0.1:8080/cb' > "$out/redirect_uri/loopback"
printf 'https://app.example/cb\0https://app.example/cb?x' > "$out/redirect_uri/https"
printf 'http://[::1]/cb\0http://[::1]:9/cb' > "$out/redirect_uri/v6"
printf '%s' '{"client_id":"https://client.example/metadata.json","client_name":"C","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}' > "$out/client_metadata_document/doc"
cat > "$out/openapi/small.json" <<'JSON'
{"openapi":"3.0.0","info":{"title":"X","version":"2.0"},"paths":{"/2/users/{id}":{"get":{"operationId":"findUserById","tags":["Users"],"summary":"User by id","security":[{"OAuth2UserToken":["users.read"]}],"parameters":[{"name":"id","in":"path","required":true,"schema":{"$ref":"#/components/schemas/UserId"}},{"name":"user.fields","in":"query","style":"form","explode":false,"schema":{"type":"array","items":{"type":"string","enum":["id","name"]}}}],"responses":{"200":{"description":"ok"}}}},"/2/tweets":{"post":{"operationId":"createPosts","security":[{"OAuth2UserToken":["tweet.write"]}],"requestBody":{"required":true,"content":{"application/json":{"schema":{"type":"object","properties":{"text":{"type":"string","nullable":true}}}}}},"responses":{"201":{"description":"ok"}}}}},"components":{"schemas":{"UserId":{"type":"string","pattern":"^[0-9]{1,19}$"}}}}
JSON
