"""Names of the served model and its signatures: what TF Serving, TFMA, the clients and the
mobile contract agree on. A leaf module: importing it loads nothing else.

Signature method names are TF Serving's (tensorflow_serving/apis, signature_constants in
tensorflow/python/saved_model); TF Serving routes Predict and Classify requests by them.
"""

MODEL_NAME = "flight_delay"
"""Pipeline name, served model name (TF Serving's --model_name) and mobile folder name."""

OUTPUT_KEY = "probability"
"""The predict signatures' one output: P(delayed), float32 [batch]."""

AUC_METRIC = "auc"
"""Keras metric name of the model's AUC; the Tuner's objective is its validation value."""

PREDICT_SIGNATURE = "serving_default"  # raw features as named [batch] tensors
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Examples; what TFMA feeds
CLASSIFY_SIGNATURE = "classify"  # serialized tf.Examples -> classes and scores
TRANSFORM_SIGNATURE = "transform_features"  # serialized tf.Examples -> transformed features
SIGNATURES = (PREDICT_SIGNATURE, EXAMPLES_SIGNATURE, CLASSIFY_SIGNATURE, TRANSFORM_SIGNATURE)

TRANSFORMED_FUNCTION = "predict_transformed"
"""A function of the SavedModel, not a signature: the Keras model on transformed features
({name: [batch]}) -> P(delayed) [batch, 1]; the TFLite export puts its builtin transform in
front of it. (The Keras model's own traced call is not saved: models/export.py.)"""

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"

EXAMPLES_INPUT = "examples"  # the input of serving_examples and transform_features
CLASSIFY_INPUT = "inputs"  # TF Serving's Classify API: one DT_STRING input named "inputs"
CLASSIFY_OUTPUTS = ("classes", "scores")  # DT_STRING and DT_FLOAT, [batch, num classes]
