#!/usr/bin/env bash
# Regenerates the real-encoder fixtures in this folder (Debian 12: apt-get install ffmpeg).
# Each .frames file holds one encoded frame per record (see split.py). The inputs are ffmpeg's
# synthetic test sources, so nothing here comes from a camera or a person.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=(-f lavfi -i testsrc2=size=320x240:rate=30 -frames:v 30)
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

# VP8 and VP9 as libvpx produces them for WebRTC: key frame every 10 frames; VP9 with
# alt-ref frames, so the stream contains superframes and show-existing frames.
ff "${src[@]}" -c:v libvpx -b:v 400k -g 10 -f ivf "$tmp/vp8.ivf"
ff "${src[@]}" -c:v libvpx-vp9 -b:v 400k -g 10 -auto-alt-ref 1 -lag-in-frames 8 -f ivf "$tmp/vp9.ivf"
# AV1 (libaom, real-time speed), temporal units with sequence headers on key frames.
ff "${src[@]}" -c:v libaom-av1 -cpu-used 8 -usage realtime -b:v 300k -g 10 -f ivf "$tmp/av1.ivf"
# H.264 constrained baseline like browsers' OpenH264, parameter sets before every IDR, access
# unit delimiters to find frame boundaries; a second stream with 4 slices per frame and CABAC.
ff "${src[@]}" -c:v libx264 -profile:v baseline -x264-params keyint=10:repeat-headers=1 \
   -bsf:v h264_metadata=aud=insert -f h264 "$tmp/h264.h264"
ff "${src[@]}" -c:v libx264 -profile:v main -x264-params keyint=10:repeat-headers=1:slices=4 \
   -bsf:v h264_metadata=aud=insert -f h264 "$tmp/h264-slices.h264"
# Opus, 20 ms packets of a 440 Hz tone at 32 kb/s, one second.
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 -c:a libopus -b:a 32k -frame_duration 20 -f ogg "$tmp/opus.ogg"

python3 split.py ivf "$tmp/vp8.ivf" vp8.frames
python3 split.py ivf "$tmp/vp9.ivf" vp9.frames
python3 split.py ivf "$tmp/av1.ivf" av1.frames
python3 split.py annexb "$tmp/h264.h264" h264.frames
python3 split.py annexb "$tmp/h264-slices.h264" h264-slices.frames
python3 split.py ogg "$tmp/opus.ogg" opus.frames
