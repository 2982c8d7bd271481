# Miroir's container image: the gateway binary and its first-party plugin components.
#   docker build -t miroir:dev .
# The Helm chart (charts/miroir) runs this image as user 10001 with a read-only root filesystem;
# the SQLite task store, when used, lives in /data.

FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV CARGO_TARGET_DIR=/src/target
RUN rustup target add wasm32-wasip2
COPY . .
# The first-party feature components only: the test and example components are not shipped.
RUN cargo build --release --locked --target wasm32-wasip2 --manifest-path plugins/Cargo.toml \
 && cargo build --release --locked -p miroir \
 && mkdir -p /out/plugins \
 && for feature in multi_search vector_search shadow cdc; do \
      if [ -e "target/wasm32-wasip2/release/$feature.wasm" ]; then \
        cp "target/wasm32-wasip2/release/$feature.wasm" /out/plugins/; \
      fi; \
    done \
 && cp target/release/miroir /out/miroir

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 miroir \
 && useradd --system --uid 10001 --gid miroir --home-dir /data --no-create-home miroir \
 && mkdir -p /data /usr/lib/miroir \
 && chown miroir:miroir /data
COPY --from=build /out/miroir /usr/local/bin/miroir
COPY --from=build /out/plugins /usr/lib/miroir/plugins
USER 10001:10001
WORKDIR /data
ENV MIROIR_PLUGINS__DIR=/usr/lib/miroir/plugins
EXPOSE 7700 9090
ENTRYPOINT ["miroir"]
CMD ["serve"]
