# xmcp as a container: `docker build -t xmcp .` then see deploy/compose.yaml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p xmcp \
 && install -m 0755 target/release/xmcp /usr/local/bin/xmcp

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --no-create-home xmcp \
 && install -d -m 0700 -o xmcp -g xmcp /data
COPY --from=build /usr/local/bin/xmcp /usr/local/bin/xmcp
USER xmcp
# Listen on every interface inside the container; XMCP_PUBLIC_URL must then
# be set (the address clients use, behind the TLS proxy).
ENV XMCP_HOST=0.0.0.0 \
    XMCP_PORT=8000 \
    XMCP_DATA_DIR=/data \
    XMCP_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/health || exit 1
ENTRYPOINT ["xmcp"]
CMD ["serve"]
