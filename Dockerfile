# chamferdb image: a build stage with Debian's -dev packages, a runtime stage with only the
# runtime libraries. Base: debian:bookworm-slim (deploy/image-test.sh shows how to make it
# locally with debootstrap where no registry is reachable).
FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      libfaiss-dev libopenblas-dev librocksdb-dev libspdlog-dev libfmt-dev libcpp-httplib-dev \
      nlohmann-json3-dev libeigen3-dev libfftw3-dev libcairo2-dev zlib1g-dev \
      libgtest-dev libgmock-dev python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHAMFERDB_BUILD_TESTS=OFF \
    && cmake --build /build --target chamferdb chamferdb-cli \
    && strip /build/server/chamferdb /build/cli/chamferdb-cli

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libopenblas0-pthread libgomp1 librocksdb7.8 libspdlog1.10 libfmt9 \
      libcpp-httplib0.11 libfftw3-double3 libcairo2 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/chamferdb --create-home chamferdb
COPY --from=build /build/server/chamferdb /build/cli/chamferdb-cli /usr/local/bin/
USER chamferdb
VOLUME ["/var/lib/chamferdb"]
ENV CHAMFERDB_LISTEN=0.0.0.0:50051 \
    CHAMFERDB_DATA_DIR=/var/lib/chamferdb \
    CHAMFERDB_METRICS_PORT=9090 \
    OMP_WAIT_POLICY=PASSIVE
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/chamferdb", "--health-probe"]
ENTRYPOINT ["/usr/local/bin/chamferdb"]
