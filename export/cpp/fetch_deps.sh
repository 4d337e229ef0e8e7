#!/usr/bin/env bash
# Prepare what export/cpp needs to build on Debian 12 (bookworm), without GitHub:
#   - cmake, g++ and OpenCV's C++ development packages, from the system's apt sources;
#   - ONNX Runtime's C/C++ headers, from Debian 13 (trixie)'s libonnxruntime-dev (bookworm has no
#     ONNX Runtime package). Only that .deb is fetched and unpacked; trixie is never added to the
#     system's apt sources, so nothing else on the machine changes;
#   - ONNX Runtime's shared library, from the onnxruntime wheel of the Python environment (the C API
#     is backward compatible: a newer library serves the older headers' API version).
# The result is a folder laid out like ONNX Runtime's release archive (include/, lib/), to pass as
# -DONNXRUNTIME_ROOT. Runs again in a second once done.
#
#   bash export/cpp/fetch_deps.sh [FOLDER]     (default: build/onnxruntime at the repository root)
#
# PYTHON picks the interpreter whose onnxruntime to link (default: the repository's .venv, else python3).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=$(realpath -m "${1:-$repo/build/onnxruntime}")
python=${PYTHON:-$repo/.venv/bin/python}
command -v "$python" >/dev/null || python=python3

# 1. Build tools and OpenCV (imgcodecs pulls in GDAL: ~60 packages, about a minute).
packages=(cmake make g++ libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { echo "fetch_deps: run as root (or apt-get install ${missing[*]})" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  # Stale package lists (a machine image older than the mirror) fail the download: refresh once.
  apt_install || { apt-get update -qq && apt_install; }
  echo "fetch_deps: installed ${missing[*]}"
fi

# 2. Headers: libonnxruntime-dev from trixie, fetched by apt with private sources and lists (so the
#    download is checked against Debian's signed index) and unpacked under $dest/deb.
if [[ ! -f $dest/include/onnxruntime_cxx_api.h ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work"/{lists/partial,cache/archives/partial,parts}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$work/sources.list"
  apt_private=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts="$work/parts"
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
    -o APT::Sandbox::User="$(id -un)" -o Acquire::Languages=none)
  apt-get "${apt_private[@]}" update -qq
  (cd "$work" && apt-get "${apt_private[@]}" download -qq libonnxruntime-dev)
  rm -rf "$dest/deb" && mkdir -p "$dest"
  dpkg-deb -x "$work"/libonnxruntime-dev_*.deb "$dest/deb"
  dpkg-deb -f "$work"/libonnxruntime-dev_*.deb Version >"$dest/deb/VERSION"
  # The package puts the headers in usr/include/onnxruntime/; the release archive has them in include/.
  ln -sfn deb/usr/include/onnxruntime "$dest/include"
fi

# 3. Library: link the wheel's libonnxruntime.so.1.x under both names a build needs: the linker looks
#    for libonnxruntime.so, the program then loads it by its soname libonnxruntime.so.1 (via RPATH).
library=$("$python" -c "import glob, os, onnxruntime as o; print(*glob.glob(os.path.join(os.path.dirname(o.__file__), 'capi', 'libonnxruntime.so.*')))")
wheel_version=$("$python" -c "import onnxruntime; print(onnxruntime.__version__)")
[[ -f $library ]] || { echo "fetch_deps: no libonnxruntime.so.* in $python's onnxruntime wheel" >&2; exit 1; }
mkdir -p "$dest/lib"
ln -sfn "$library" "$dest/lib/libonnxruntime.so"
ln -sfn "$library" "$dest/lib/libonnxruntime.so.1"

# The headers ask the library for API version ORT_API_VERSION; ONNX Runtime 1.N serves versions up to N.
api=$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$dest/include/onnxruntime_c_api.h")
wheel_minor=$(cut -d. -f2 <<<"$wheel_version")
if ((wheel_minor < api)); then
  echo "fetch_deps: headers need ONNX Runtime >= 1.$api, the wheel is $wheel_version" >&2
  exit 1
fi

echo "fetch_deps: ONNXRUNTIME_ROOT=$dest"
echo "  headers  $dest/include -> $(readlink "$dest/include") (libonnxruntime-dev $(cat "$dest/deb/VERSION") from Debian trixie, API version $api)"
echo "  library  $dest/lib/libonnxruntime.so -> $library (onnxruntime $wheel_version)"
echo "  OpenCV   $(dpkg-query -W -f='${Version}' libopencv-core-dev), $(cmake --version | head -1), $(g++ --version | head -1)"
