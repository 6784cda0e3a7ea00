# Builds both binaries; the runtime image has bash and git, which jobs need.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p conveyor -p conveyor-runner

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends bash git ca-certificates coreutils \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/conveyor /src/target/release/conveyor-runner /usr/local/bin/
COPY examples /opt/conveyor/examples
WORKDIR /opt/conveyor
EXPOSE 8080
CMD ["conveyor", "serve", "--listen=0.0.0.0:8080"]
