#!/usr/bin/env bash
# Builds the pipeline image and pushes it.
#   scripts/build_image.sh REGISTRY/flight-delay:TAG [--no-push]
# With a Docker engine: docker build (+ push). Without one: Cloud Build builds and pushes the
# same Dockerfile (needs gcloud, authenticated, with the project set).
set -euo pipefail
image=${1:?usage: scripts/build_image.sh REGISTRY/NAME:TAG [--no-push]}
push=${2:-}
cd "$(dirname "$0")/.."

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  docker build --tag "$image" .
  if [[ "$push" != "--no-push" ]]; then
    docker push "$image"
  fi
elif command -v gcloud >/dev/null 2>&1; then
  echo "No Docker engine here: building and pushing with Cloud Build." >&2
  gcloud builds submit --tag "$image" .
else
  echo "error: neither a Docker engine nor gcloud is available to build $image" >&2
  exit 1
fi
echo "Image: $image   (compile with: python kubeflow_runner.py --image $image ...)"
