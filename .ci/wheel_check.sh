#!/usr/bin/env bash
# The package works outside the checkout: build the wheel, install it into a fresh venv and run
# `genreid` from another directory (shipped configs and weights, synthetic data, short runs).
# The heavy dependencies (torch alone is 5 GB) come from the dev venv through a .pth line;
# genreid itself comes only from the wheel, which the script checks.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

.venv/bin/pip wheel --no-deps --quiet --wheel-dir "$tmp/dist" .
.venv/bin/python -m venv "$tmp/venv"
py="$tmp/venv/bin/python"
dev_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
new_site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$dev_site" > "$new_site/genreid_dev_dependencies.pth"
"$tmp/venv/bin/pip" install --quiet --no-deps --no-index "$tmp"/dist/genreid-*.whl

cd "$tmp"
where=$("$py" -c 'import genreid; print(genreid.__file__)')
case "$where" in
  "$new_site"/*) echo "genreid imported from the wheel: $where" ;;
  *) echo "error: genreid was imported from $where, not from the installed wheel"; exit 1 ;;
esac
case "$where" in "$repo"/*) echo "error: the checkout leaked in"; exit 1 ;; esac
bin="$tmp/venv/bin/genreid"
"$bin" --help > /dev/null
"$bin" --version
"$bin" config list
"$bin" config show tiny > /dev/null
"$bin" data synth --out "$tmp/synth" --ids 8 --cams 2 --workers 1 > /dev/null
"$bin" data info --dataset market1501 --root "$tmp/synth"
"$bin" train --config tiny data.root="$tmp/synth" train.epochs=1 train.max_iters=2 \
  train.progress=false model.width=8 model.pretrained=null --out "$tmp/run"
test -f "$tmp/run/results.json"
# the shipped synthetic-pedestrian backbone comes with the wheel and initialises the tiny
# recipe (its default)
"$bin" train --config tiny data.root="$tmp/synth" train.epochs=1 train.max_iters=2 \
  train.progress=false model.pretrained=synthetic --out "$tmp/run_pretrained"
test -f "$tmp/run_pretrained/results.json"
# every table spec ships, with the fragments they include
"$bin" reproduce --list > /dev/null
"$bin" reproduce fapl3 --root "$tmp/synth" --out "$tmp/fapl3" --plan > /dev/null
echo "wheel check: ok"
