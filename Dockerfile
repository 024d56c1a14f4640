# The spartakus image: the two static binaries from ./build, and nothing else
# (no shell, no libc, no CA bundle: the volunteer falls back to the Mozilla
# roots compiled into it). It needs no base image from a registry. Tag it
# with the version, as contrib/kubernetes expects (images: newTag in its
# kustomization.yaml), and stamp the same version and the commit into its
# OCI labels:
#
#   version=$(git describe --tags --always --dirty=-dirty)
#   ./build && docker build -t "spartakus:$version" \
#     --build-arg VERSION="$version" --build-arg REVISION="$(git rev-parse HEAD)" .
#
# (A tag may not hold "+", so -dirty here where ./build's binaries say +dirty.)
# Without a local Rust toolchain, run ./build in a Rust container first (it
# adds the musl target and musl-tools itself when run as root):
#
#   docker run --rm -v "$PWD":/src -w /src rust:1-bookworm \
#     sh -c 'git config --global --add safe.directory /src && ./build'
#
# The collector is the default entrypoint; it listens on 0.0.0.0:8080 here:
#
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://user:pass@db/spartakus spartakus:$version
#
# The volunteer (in a cluster, see contrib/kubernetes/):
#
#   docker run --rm --entrypoint /spartakus-volunteer spartakus:$version --help
FROM scratch
# What `docker inspect` and registries show. VERSION and REVISION are
# "unknown" unless given; SOURCE, the URL of the repository the image is
# built from (--build-arg SOURCE=https://...), is empty unless given.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="spartakus" \
      org.opencontainers.image.description="Anonymous usage reporting for Kubernetes clusters: spartakus-collector (the default entrypoint) and spartakus-volunteer, static binaries" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
COPY bin/spartakus-collector bin/spartakus-volunteer /
# The collector's default, 127.0.0.1:8080, is unreachable from outside a
# container. The volunteer does not read this variable.
ENV SPARTAKUS_LISTEN=0.0.0.0:8080
EXPOSE 8080
# nobody:nogroup, numeric so that Kubernetes' runAsNonRoot can check it.
USER 65534:65534
ENTRYPOINT ["/spartakus-collector"]
