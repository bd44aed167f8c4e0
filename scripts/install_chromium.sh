#!/usr/bin/env bash
# Install Debian's Chromium (browser tests, `--pdf` → report.pdf), if it is not there yet.
set -euo pipefail
# A Chinese font too, so screenshots, map.png and map.pdf show 中文 instead of empty boxes:
# WenQuanYi Micro Hei (Debian fonts-wqy-microhei; Apache-2.0 or GPL-3 with the font
# embedding exception). coverage/figure.py looks for it first, then for Noto Sans CJK.
if command -v chromium >/dev/null 2>&1 \
  && { [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] \
    || fc-list 2>/dev/null | grep -qi "wenquanyi\|noto.*cjk"; }; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "Installing Debian chromium for the browser tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
