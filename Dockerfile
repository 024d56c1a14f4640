# The spartakus image: the two static binaries from ./build, and nothing else
# (no shell, no libc, no CA bundle: the volunteer falls back to the Mozilla
# roots compiled into it). It needs no base image from a registry:
#
#   ./build && docker build -t spartakus .
#
# Without a local Rust toolchain, run ./build in a Rust container first (it
# adds the musl target and musl-tools itself when run as root):
#
#   docker run --rm -v "$PWD":/src -w /src rust:1-bookworm \
#     sh -c 'git config --global --add safe.directory /src && ./build'
#
# The collector is the default entrypoint; it listens on 0.0.0.0:8080 here:
#
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://user:pass@db/spartakus spartakus
#
# The volunteer (in a cluster, see contrib/kubernetes/):
#
#   docker run --rm --entrypoint /spartakus-volunteer spartakus --help
FROM scratch
COPY bin/spartakus-collector bin/spartakus-volunteer /
# The collector's default, 127.0.0.1:8080, is unreachable from outside a
# container. The volunteer does not read this variable.
ENV SPARTAKUS_LISTEN=0.0.0.0:8080
EXPOSE 8080
# nobody:nogroup, numeric so that Kubernetes' runAsNonRoot can check it.
USER 65534:65534
ENTRYPOINT ["/spartakus-collector"]
