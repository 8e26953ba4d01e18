# syntax=docker/dockerfile:1
# Multi-stage build of `kmt` and `kmt-indexer` into one small non-root image.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kmt-api -p kmt-indexer \
 && mkdir -p /out \
 && cp target/release/kmt target/release/kmt-indexer /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/kmt --create-home kmt
COPY --from=build /out/kmt /out/kmt-indexer /usr/local/bin/
USER 10001
WORKDIR /var/lib/kmt
ENV KMT_DATA_DIR=/var/lib/kmt/data \
    KMT_LISTEN=0.0.0.0:8080 \
    KMT_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["kmt", "healthcheck"]
ENTRYPOINT ["kmt"]
CMD ["serve"]
