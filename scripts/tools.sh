#!/usr/bin/env bash
# tools.sh installs what the local stack (devstack, `make run`, e2e tests) needs:
# Debian packages from apt, and pinned builds of temporal, buildkitd, buildctl and
# the Temporal web UI server (temporal-ui-server) in $TOOLS_DIR (default <repo>/.tools/bin). It is idempotent: a second run does
# nothing. Each pinned tool has a stamp file (.temporal-v1.5.1, ...) so bumping a
# version below rebuilds it.
#
# `tools.sh prod` also builds the Temporal server and its temporal-sql-tool from
# go.temporal.io/server, with the server's SQL schemas beside them in
# $TOOLS_DIR/temporal-schema, for `make test-prod`.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$REPO_DIR/.tools/bin}
TEMPORAL_VERSION=v1.5.1
BUILDKIT_VERSION=v0.34.2
# The server release that temporal CLI $TEMPORAL_VERSION embeds as its dev server.
TEMPORAL_SERVER_VERSION=v1.29.1
# The web UI server that temporal CLI $TEMPORAL_VERSION embeds.
TEMPORAL_UI_VERSION=v2.42.1
# chromium runs the console's browser tests headless; fonts-wqy-zenhei draws its Chinese pages.
# qemu-user-static runs the RUN steps of foreign platforms (linux/arm64) as buildkitd's
# emulator helpers.
APT_PACKAGES=(runc docker-registry busybox-static git postgresql ca-certificates
	containernetworking-plugins nftables iproute2 chromium fonts-wqy-zenhei qemu-user-static)
# Foreign architectures whose static busybox (Debian's busybox-static of that architecture) is
# extracted to $TOOLS_DIR/busybox-ARCH, so the stack seeds a multi-platform busybox and
# `FROM busybox` builds for them too.
FOREIGN_BUSYBOX_ARCHES=(arm64)

CLEANUP_DIR=
trap 'if [[ -n $CLEANUP_DIR ]]; then rm -rf "$CLEANUP_DIR"; fi' EXIT

log() { printf 'tools.sh: %s\n' "$*" >&2; }

have_system_tools() {
	[[ -x /usr/sbin/runc ]] || command -v runc >/dev/null 2>&1 || return 1
	[[ -x /usr/bin/docker-registry ]] || command -v docker-registry >/dev/null 2>&1 || return 1
	[[ -x /bin/busybox ]] || return 1
	command -v git >/dev/null 2>&1 || return 1
	[[ -f /etc/ssl/certs/ca-certificates.crt ]] || return 1
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || return 1
	# The build network: BuildKit's CNI bridge, its egress filter and the bridge itself.
	[[ -x /usr/lib/cni/bridge ]] || return 1
	command -v nft >/dev/null 2>&1 || [[ -x /usr/sbin/nft ]] || return 1
	command -v ip >/dev/null 2>&1 || [[ -x /usr/sbin/ip || -x /sbin/ip ]] || return 1
	# The console's browser tests.
	command -v chromium >/dev/null 2>&1 || return 1
	# Emulated platforms.
	[[ -x /usr/bin/qemu-aarch64-static ]] || return 1
	compgen -G '/usr/share/fonts/truetype/wqy/wqy-zenhei*' >/dev/null || return 1
}

install_system_tools() {
	if have_system_tools; then
		return
	fi
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	log "installing ${APT_PACKAGES[*]} with apt-get"
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
	if ! have_system_tools; then
		log "apt-get finished but runc, docker-registry, /bin/busybox, git, initdb, the CNI plugins, nft, ip, chromium, its CJK font or qemu-user-static is still missing"
		exit 1
	fi
}

# fetch_foreign_busybox extracts busybox-static of each of FOREIGN_BUSYBOX_ARCHES to
# $TOOLS_DIR/busybox-ARCH: the package is downloaded with apt-get (after adding the
# architecture to dpkg's and fetching its package lists), not installed, since it would
# replace this machine's /bin/busybox. A stamp names the package version.
fetch_foreign_busybox() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	local arch version dir added
	for arch in "${FOREIGN_BUSYBOX_ARCHES[@]}"; do
		version=$(apt-cache policy "busybox-static:$arch" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [[ -z $version || $version == "(none)" ]]; then
			added=
			if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
				log "adding dpkg architecture $arch for busybox-static:$arch"
				"${sudo[@]}" dpkg --add-architecture "$arch"
				added=1
			fi
			# A failed update (an archive without $arch, as Ubuntu's main one) leaves the
			# stack without the foreign busybox, not without the tools.
			"${sudo[@]}" apt-get update || log "apt-get update with $arch failed"
			version=$(apt-cache policy "busybox-static:$arch" | awk '/Candidate:/ {print $2}')
			if [[ -z $version || $version == "(none)" ]]; then
				log "no busybox-static:$arch in apt's sources: the stack seeds busybox without $arch, and FROM busybox does not build for it"
				if [[ -n $added ]]; then
					# Left added, it would fail every later apt-get update.
					"${sudo[@]}" dpkg --remove-architecture "$arch"
				fi
				continue
			fi
		fi
		local stamp=$TOOLS_DIR/.busybox-$arch-${version//[:\/]/_}
		if [[ -x $TOOLS_DIR/busybox-$arch && -f $stamp ]]; then
			continue
		fi
		log "extracting busybox-static:$arch $version"
		dir=$(mktemp -d)
		CLEANUP_DIR=$dir
		# apt-get downloads as its own user (_apt), which must reach the folder.
		chmod 0755 "$dir"
		if ! (cd "$dir" && apt-get download "busybox-static:$arch=$version"); then
			log "downloading busybox-static:$arch failed: the stack seeds busybox without $arch"
			rm -rf "$dir"
			CLEANUP_DIR=
			continue
		fi
		dpkg-deb -x "$dir"/busybox-static_*_"$arch".deb "$dir/root"
		install -m 0755 "$dir/root/bin/busybox" "$TOOLS_DIR/busybox-$arch"
		rm -f "$TOOLS_DIR/.busybox-$arch-"*
		touch "$stamp"
		rm -rf "$dir"
		CLEANUP_DIR=
	done
}

# tool_ready NAME VERSION CHECK...: true when $TOOLS_DIR/NAME is built at
# VERSION. A binary without a stamp (built by hand) counts when CHECK, run with
# the binary's path appended, confirms the version; the stamp is written then
# so the next run trusts it directly.
tool_ready() {
	local name=$1 version=$2
	shift 2
	local bin=$TOOLS_DIR/$name stamp=$TOOLS_DIR/.$name-$version
	[[ -x $bin ]] || return 1
	[[ -f $stamp ]] && return 0
	if "$@" "$bin" >/dev/null 2>&1; then
		touch "$stamp"
		return 0
	fi
	return 1
}

# module_version_is MODULE VERSION BIN: BIN's main module, as `go install`
# records it, is MODULE at VERSION. (`temporal --version` says 0.0.0-DEV
# when built by go install: its version comes from release ldflags.)
module_version_is() {
	go version -m "$3" | grep -qE "^[[:space:]]+mod[[:space:]]+$1[[:space:]]+$2([[:space:]]|\$)"
}

# reports_version VERSION BIN: `BIN --version` mentions VERSION.
reports_version() {
	"$2" --version | grep -qF -- " $1"
}

clear_stamps() {
	local name
	for name in "$@"; do
		rm -f "$TOOLS_DIR/.$name-"*
	done
}

build_temporal() {
	if tool_ready temporal "$TEMPORAL_VERSION" module_version_is github.com/temporalio/cli "$TEMPORAL_VERSION"; then
		return
	fi
	log "building temporal $TEMPORAL_VERSION (a few minutes)"
	clear_stamps temporal
	GOBIN=$TOOLS_DIR GOWORK=off GOFLAGS= \
		go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION"
	touch "$TOOLS_DIR/.temporal-$TEMPORAL_VERSION"
}

build_buildkit() {
	# Built by hand from a module copy, buildkit reports v0.0.0+unknown; this
	# script's builds set the version with -ldflags so they can be checked.
	if tool_ready buildkitd "$BUILDKIT_VERSION" reports_version "$BUILDKIT_VERSION" &&
		tool_ready buildctl "$BUILDKIT_VERSION" reports_version "$BUILDKIT_VERSION"; then
		return
	fi
	log "building buildkitd and buildctl $BUILDKIT_VERSION (a few minutes)"
	clear_stamps buildkitd buildctl
	# `go install ...@version` refuses modules whose go.mod has exclude
	# directives, as buildkit's has, so build from a writable copy of the module.
	local dir src
	dir=$(module_dir github.com/moby/buildkit "$BUILDKIT_VERSION")
	src=$(mktemp -d "${TMPDIR:-/tmp}/slipway-buildkit-src.XXXXXX")
	CLEANUP_DIR=$src
	cp -R "$dir/." "$src"
	chmod -R u+w "$src"
	(
		cd "$src"
		GOWORK=off GOFLAGS= go build \
			-ldflags "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
			-o "$TOOLS_DIR/" ./cmd/buildkitd ./cmd/buildctl
	)
	touch "$TOOLS_DIR/.buildkitd-$BUILDKIT_VERSION" "$TOOLS_DIR/.buildctl-$BUILDKIT_VERSION"
	rm -rf "$src"
	CLEANUP_DIR=
}

# module_dir MODULE VERSION: the module's folder in the module cache, downloaded if needed.
module_dir() {
	local dir
	# Run outside the repository so its go.mod and go.sum stay untouched.
	dir=$(cd / && GOWORK=off GOFLAGS= go mod download -json "$1@$2" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	if [[ -z $dir || ! -d $dir ]]; then
		log "go mod download gave no directory for $1@$2"
		exit 1
	fi
	printf '%s\n' "$dir"
}

build_temporal_server() {
	if tool_ready temporal-server "$TEMPORAL_SERVER_VERSION" module_version_is go.temporal.io/server "$TEMPORAL_SERVER_VERSION" &&
		tool_ready temporal-sql-tool "$TEMPORAL_SERVER_VERSION" module_version_is go.temporal.io/server "$TEMPORAL_SERVER_VERSION" &&
		[[ -f $TOOLS_DIR/temporal-schema/.$TEMPORAL_SERVER_VERSION ]]; then
		return
	fi
	log "building temporal-server and temporal-sql-tool $TEMPORAL_SERVER_VERSION (a few minutes)"
	clear_stamps temporal-server temporal-sql-tool
	local gobin
	gobin=$(mktemp -d "${TMPDIR:-/tmp}/slipway-temporal-server.XXXXXX")
	CLEANUP_DIR=$gobin
	(cd / && GOBIN=$gobin GOWORK=off GOFLAGS= go install \
		"go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
		"go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION")
	mv "$gobin/server" "$TOOLS_DIR/temporal-server"
	mv "$gobin/sql" "$TOOLS_DIR/temporal-sql-tool"
	rm -rf "$gobin"
	CLEANUP_DIR=
	# The schemas temporal-sql-tool applies ship in the module, not in the binaries.
	local dir
	dir=$(module_dir go.temporal.io/server "$TEMPORAL_SERVER_VERSION")
	rm -rf "$TOOLS_DIR/temporal-schema"
	mkdir -p "$TOOLS_DIR/temporal-schema"
	cp -R "$dir/schema/postgresql" "$TOOLS_DIR/temporal-schema/"
	chmod -R u+w "$TOOLS_DIR/temporal-schema"
	touch "$TOOLS_DIR/temporal-schema/.$TEMPORAL_SERVER_VERSION" \
		"$TOOLS_DIR/.temporal-server-$TEMPORAL_SERVER_VERSION" "$TOOLS_DIR/.temporal-sql-tool-$TEMPORAL_SERVER_VERSION"
}

build_temporal_ui() {
	if tool_ready temporal-ui-server "$TEMPORAL_UI_VERSION" module_version_is github.com/temporalio/ui-server/v2 "$TEMPORAL_UI_VERSION"; then
		return
	fi
	log "building temporal-ui-server $TEMPORAL_UI_VERSION"
	clear_stamps temporal-ui-server
	local gobin
	gobin=$(mktemp -d "${TMPDIR:-/tmp}/slipway-temporal-ui.XXXXXX")
	CLEANUP_DIR=$gobin
	(cd / && GOBIN=$gobin GOWORK=off GOFLAGS= go install "github.com/temporalio/ui-server/v2/cmd/server@$TEMPORAL_UI_VERSION")
	mv "$gobin/server" "$TOOLS_DIR/temporal-ui-server"
	rm -rf "$gobin"
	CLEANUP_DIR=
	touch "$TOOLS_DIR/.temporal-ui-server-$TEMPORAL_UI_VERSION"
}

main() {
	install_system_tools
	mkdir -p "$TOOLS_DIR"
	TOOLS_DIR=$(cd "$TOOLS_DIR" && pwd)
	# Two runs at once (make -j, CI retries) would build the same tools twice on
	# a small machine; the second waits for the first and then finds them done.
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$TOOLS_DIR/.lock"
		flock 9
	fi
	build_temporal
	build_buildkit
	fetch_foreign_busybox
	# The dev server's own web UI cannot turn its write actions off, so every stack
	# serves the UI with this server instead.
	build_temporal_ui
	if [[ ${1:-} == prod ]]; then
		build_temporal_server
	fi
	log "tools ready in $TOOLS_DIR"
}

main "$@"
