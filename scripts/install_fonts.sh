#!/usr/bin/env bash
# Installs the freely licensed CJK and Latin faces that Debian ships, for training data, and
# the Chinese manual pages and Chromium that the engine pages use, and free photographs.
# Inference and the tests need none of them (they use the fonts pip installs: mplfonts,
# matplotlib's DejaVu). Run as root (or with sudo) on a Debian or Ubuntu machine:
#
#     bash scripts/install_fonts.sh
#     python -m ocr_common.fonts            # the faces found and their charset coverage
#
# Font collections (.ttc) hold several faces; ocr_common.fonts splits them into one file a
# face in its cache folder the first time it lists fonts, keeping the Chinese ones.
set -euo pipefail
CJK=(
  fonts-noto-cjk fonts-noto-cjk-extra            # Noto Sans/Serif CJK, Thin .. Black
  fonts-arphic-ukai fonts-arphic-uming fonts-arphic-gbsn00lp fonts-arphic-gkai00mp
  fonts-arphic-bkai00mp fonts-arphic-bsmi00lp
  fonts-cwtex-fs fonts-cwtex-heib fonts-cwtex-kai fonts-cwtex-ming fonts-cwtex-yen
  fonts-cns11643-kai fonts-cns11643-sung fonts-lxgw-wenkai fonts-babelstone-han
  fonts-wqy-zenhei fonts-wqy-microhei fonts-droid-fallback fonts-hanazono
)
LATIN=(
  fonts-liberation2 fonts-croscore fonts-freefont-ttf fonts-urw-base35 fonts-dejavu-extra
  fonts-noto-core fonts-noto-mono fonts-open-sans fonts-lato fonts-cantarell
  fonts-inconsolata fonts-firacode fonts-jetbrains-mono fonts-league-mono fonts-dseg
)
# Training text and the layout engine of ctpn_jax.data.engine: Debian's Chinese manual pages
# (real prose, ocr_common.prose) and headless Chromium.
EXTRA=(manpages-zh chromium)
# Real photographs (free desktop wallpapers: landscapes, plants, water, cups, wood) for the
# backgrounds and clutter of the training data (ocr_common.photos, data.photo_prob).
PHOTOS=(gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers)
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${CJK[@]}" "${LATIN[@]}" "${EXTRA[@]}" "${PHOTOS[@]}"
