# The pipeline image: every Kubeflow / Vertex AI step, Vertex training job and Dataflow worker
# runs it, so all of them have the same TFX stack and the same code.
#   scripts/build_image.sh REGISTRY/flight-delay:TAG
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /pipeline

# Locked dependencies first (this layer changes only with the lock). --no-deps: the lock is a
# complete resolution for the image's Python 3.10; pip's resolver adds nothing but minutes.
COPY requirements/image-lock.txt requirements/image-lock.txt
RUN python -m pip install --no-cache-dir --no-deps -r requirements/image-lock.txt

# Our package, from setup.py. The sources stay in /pipeline too: the compiled spec reads the
# curated schema from /pipeline/transforms/schema/schema.pbtxt (kubeflow_runner.IMAGE_SCHEMA_FILE).
COPY setup.py local_runner.py kubeflow_runner.py ./
COPY transforms/ transforms/
COPY models/ models/
COPY serving/ serving/
COPY mobile/ mobile/
COPY pipeline/ pipeline/
RUN python -m pip install --no-cache-dir --no-deps . \
 && python -c "import pipeline.pipeline, serving.warmup, serving.sidecar, mobile.gates, tflite_runtime"

# TFX's KFP v2 launcher is the command of every step; no ENTRYPOINT of our own.
