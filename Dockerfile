# Lectern: the same binary the README builds (`cargo build --release -p lectern-server`).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p lectern-server --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/lectern /usr/local/bin/lectern
# HTTP + WebSocket on 8080/tcp; all media (WebRTC) on one UDP port, 40000.
ENV LECTERN_SERVER_LISTEN=0.0.0.0:8080 \
    LECTERN_SERVER_DATA_DIR=/data \
    LECTERN_MEDIA_BIND=0.0.0.0:40000 \
    LECTERN_MEDIA_WORKERS=4
VOLUME /data
# Media: one UDP port per media worker, 40000 up to 40000 + LECTERN_MEDIA_WORKERS - 1.
EXPOSE 8080/tcp 40000-40003/udp
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/lectern"]
CMD ["serve"]
