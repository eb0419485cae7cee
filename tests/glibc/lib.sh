# Sourced by the glibc matrix tests: Debian's bullseye and trixie C
# libraries fetched from Debian's archive into $WORK, and the knownheap
# target built against each.  Needs tests/lib.sh sourced first.
# shellcheck shell=bash
need_cmd apt-get
need_cmd dpkg-deb
need_cmd gcc
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${GLIBC_MATRIX_DIR:-$TARGETS_DIR/glibc}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || skip "no Debian archive keyring ($KEYRING): cannot fetch other suites' libc"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/dl"
cat >"$WORK/apt/sources.list" <<SRC
deb [signed-by=$KEYRING] http://deb.debian.org/debian bullseye main
deb [signed-by=$KEYRING] http://deb.debian.org/debian trixie main
SRC
APT=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root)
if ! timeout 300 apt-get "${APT[@]}" update -qq >"$WORK/apt/update.log" 2>&1; then
	skip "cannot fetch Debian's bullseye/trixie package lists: $(tail -1 "$WORK/apt/update.log")"
fi

# setup SUITE: extract libc6, libc6-dev, libc6-dbg (and the kernel headers
# libc6-dev needs) into $WORK/root-SUITE, with absolute symlinks made to
# point inside it; prints the root.
setup()
{
	local suite=$1 root=$WORK/root-$1
	if [ ! -e "$root/.done" ]; then
		rm -rf "$root" && mkdir -p "$root"
		(cd "$WORK/dl" && rm -f ./*.deb &&
		 timeout 600 apt-get "${APT[@]}" download "libc6/$suite" "libc6-dev/$suite" "libc6-dbg/$suite" \
			"linux-libc-dev/$suite" >"$WORK/dl/$suite.log" 2>&1) || return 1
		for deb in "$WORK"/dl/*.deb; do dpkg-deb -x "$deb" "$root"; done
		# usrmerged suites ship /usr/lib only; the loader path wants /lib64
		[ -e "$root/lib" ] || ln -s usr/lib "$root/lib"
		[ -e "$root/lib64" ] || ln -s usr/lib64 "$root/lib64"
		if [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ]; then
			mkdir -p "$root/lib64"
			ln -sfn "$(cd "$root" && ls lib/x86_64-linux-gnu/ld-*.so* | head -1 | sed 's|^|../|')" \
				"$root/lib64/ld-linux-x86-64.so.2"
		fi
		find "$root" -type l | while read -r l; do
			t=$(readlink "$l")
			case $t in /*) ln -sfn "$root$t" "$l" ;; esac
		done
		touch "$root/.done"
	fi
	echo "$root"
}


# build_target SUITE VER ROOT: knownheap built against ROOT's glibc, run by
# its own loader; prints the binary's path.
build_target()
{
	local ver=$2 root=$3 bin=$WORK/knownheap-$2
	gcc --sysroot="$root" -B "$root/usr/lib/x86_64-linux-gnu/" -L "$root/usr/lib/x86_64-linux-gnu" \
		-L "$root/lib/x86_64-linux-gnu" -O1 -pthread -o "$bin" "$SRC/tests/targets/knownheap.c" \
		-Wl,--dynamic-linker="$root/lib64/ld-linux-x86-64.so.2" -Wl,-rpath="$root/lib/x86_64-linux-gnu" \
		2>"$WORK/build-$ver.log" || return 1
	echo "$bin"
}
