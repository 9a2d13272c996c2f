#!/usr/bin/env bash
# Strict mypy over the whole `acdc` package, as it is installed.
#
# pyproject.toml maps the subpackages to top-level folders (acdc.agents -> agents/, ...),
# which mypy cannot follow: checking the folders by path leaves every `acdc.xxx` import
# unresolved (Any) and reports wrong errors. So this builds the installed layout as a tree
# of symlinks under .cache/typecheck/ (git-ignored) and runs `mypy -p acdc` on it with the
# repo's pyproject config. Paths in the output are mapped back to the repo's files.
set -euo pipefail

cd "$(dirname "$0")/.."
root="$PWD"
tree=".cache/typecheck"
subpackages=(agents graphs population prompts vectorstore)

rm -rf "$tree"
mkdir -p "$tree/acdc"
for file in acdc/*.py; do
    ln -s "$root/$file" "$tree/acdc/"
done
for init in acdc/*/__init__.py; do  # packages inside acdc/ (acdc/settings/)
    ln -s "$root/${init%/__init__.py}" "$tree/acdc/"
done
for dir in "${subpackages[@]}"; do
    ln -s "$root/$dir" "$tree/acdc/$dir"
done

# `acdc/<subpackage>/x.py` -> `<subpackage>/x.py`, then `acdc/x.py` stays `acdc/x.py`.
pattern="$(IFS='|'; echo "${subpackages[*]}")"
MYPYPATH="$root/$tree" .venv/bin/mypy --config-file pyproject.toml -p acdc \
    | sed -E "s#^$tree/acdc/($pattern)/#\\1/#; s#^$tree/acdc/#acdc/#"
