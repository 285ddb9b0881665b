# s3csi's image for users who build with Docker and can reach Deno's downloads. It is NOT built on
# the project's own machines (no Docker engine, no container registry, no denort download there):
# scripts/build-image builds the image the tests run, as an OCI tar, from Debian and npm only.
#
# Same layout as that image: one program, /usr/local/bin/s3csi, the entry point of every role
# (controller, node, reconciler, mount, doctor), starting offline. Here it is the single binary of
# `deno compile` (which downloads its denort runtime in the build stage); scripts/build-image, where
# no denort can be had, ships the pinned deno with the program and its npm dependencies cached.
#
#   docker build -t registry.example.com/s3csi:0.1.0 .
ARG DENO_VERSION=2.9.6

FROM denoland/deno:debian-${DENO_VERSION} AS build
WORKDIR /app
COPY deno.json deno.lock main.ts ./
COPY cmd cmd
COPY internal internal
COPY proto proto
# The npm dependencies exactly as locked, then one binary holding them and the protobuf files.
RUN deno install --frozen --entrypoint main.ts \
 && deno compile -A --frozen --include proto/ --output /out/s3csi main.ts \
 && /out/s3csi version

# glibc and libgcc are all the binary needs at run time; no shell.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/s3csi /usr/local/bin/s3csi
ENTRYPOINT ["/usr/local/bin/s3csi"]
