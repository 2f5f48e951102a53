#!/bin/sh
# Builds the image from this checkout and runs deploy/compose.yaml as an
# operator would (three xmcp replicas, PostgreSQL, Caddy with its own CA for
# `localhost`), then checks it from a container on the compose network:
#
#   - every replica became healthy, after migrating one database together;
#   - through Caddy: health, the OAuth metadata with the public issuer, a
#     dynamic client registration, and /metrics kept internal;
#   - Caddy spreads requests over all three replicas;
#   - with one replica stopped, every request through Caddy still succeeds.
#
# Needs Docker with the compose plugin. Uses its own project name, image
# (`xmcp-smoke`, kept so that a second run reuses its layers) and secrets,
# and removes its containers and volumes when it ends.
#   deploy/smoke-test.sh
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
project=xmcp-smoke
image=xmcp-smoke
compose() {
	docker compose -p "$project" -f "$work/compose.yaml" -f "$work/override.yaml" "$@"
}
cleanup() {
	compose down -v --remove-orphans >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	compose logs --no-color --tail 40 >&2 || true
	exit 1
}

cp "$repo/deploy/compose.yaml" "$repo/deploy/Caddyfile" "$work/"
# X's OpenAPI document is fetched from X at startup. So that the check
# needs no network, the replicas read the simulated X's document instead.
cat >"$work/override.yaml" <<EOF
services:
  xmcp:
    build: $repo
    image: $image
    environment:
      XMCP_X_OPENAPI: /openapi.json
    volumes:
      - ./openapi.json:/openapi.json:ro
EOF
mkdir "$work/secrets"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secrets/postgres_password"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secrets/metrics_token"
printf %s not-a-real-secret >"$work/secrets/x_client_secret"
export XMCP_DOMAIN=localhost XMCP_X_CLIENT_ID=smoke-test-client

echo "== build"
compose build --quiet xmcp
docker run --rm "$image" gen-key >"$work/secrets/encryption_key"
docker run --rm --entrypoint sh "$image" -c '
	xmcp sandbox >/dev/null 2>&1 &
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -sf http://127.0.0.1:8001/2/openapi.json && exit 0
		sleep 1
	done
	exit 1' >"$work/openapi.json" || fail "cannot get the simulated X's OpenAPI document"

echo "== start: 3 replicas"
compose up -d --scale xmcp=3 --wait --wait-timeout 120 || fail "the stack did not become healthy"

network="${project}_default"
# curl from a container on the compose network, reaching Caddy as `localhost`.
via_caddy() {
	docker run --rm --network "$network" --entrypoint curl "$image" \
		-sk --connect-to localhost:443:caddy:443 "$@"
}
status_of() {
	via_caddy -o /dev/null -w '%{http_code}' "$@"
}

echo "== through Caddy"
[ "$(status_of https://localhost/health)" = 200 ] || fail "/health is not 200"
issuer=$(via_caddy https://localhost/.well-known/oauth-authorization-server | grep -o '"issuer":"[^"]*"')
[ "$issuer" = '"issuer":"https://localhost"' ] || fail "issuer is $issuer"
[ "$(status_of https://localhost/metrics)" = 404 ] || fail "/metrics is reachable from outside"
registered=$(status_of -X POST -H 'content-type: application/json' \
	-d '{"client_name":"smoke","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}' \
	https://localhost/register)
[ "$registered" = 201 ] || fail "registration answered $registered"

echo "== round robin"
i=0
while [ $i -lt 30 ]; do
	[ "$(status_of https://localhost/.well-known/oauth-protected-resource/mcp)" = 200 ] ||
		fail "metadata request $i failed"
	i=$((i + 1))
done
token=$(cat "$work/secrets/metrics_token")
for c in $(compose ps -q xmcp); do
	ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "$c")
	served=$(docker run --rm --network "$network" --entrypoint curl "$image" -s \
		-H "authorization: Bearer $token" "http://$ip:8000/metrics" |
		grep 'route="/.well-known/oauth-protected-resource/mcp",status="200"' |
		awk '{print $2}')
	echo "replica $ip served ${served:-0} metadata requests"
	[ "${served:-0}" -gt 0 ] || fail "replica $ip got no requests"
done

echo "== one replica stopped"
docker stop "$(compose ps -q xmcp | head -n 1)" >/dev/null
i=0
while [ $i -lt 30 ]; do
	[ "$(status_of https://localhost/health)" = 200 ] || fail "request $i failed with a replica down"
	i=$((i + 1))
done

echo "OK"
