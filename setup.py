"""Packages the pipeline's code so the same modules run locally and in the Kubeflow image.

Dependencies are not declared here: they are installed from requirements/lock.txt (see
scripts/dev.py), because the tfx 1.16 wheels declare Requires-Python <3.11 and must be
installed with --no-deps next to a dependency set resolved for Python 3.11.
"""

from setuptools import find_packages, setup

setup(
    name="flight-delay-tfx",
    version="0.1.0",
    description="TFX pipeline predicting 15+ minute arrival delays of 2013 New York flights",
    # 3.11 locally (requirements/lock.txt); 3.10 in the pipeline image (tfx:1.16.0,
    # requirements/image-lock.txt).
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["pipeline*", "models*", "transforms*", "serving*", "mobile*"]),
    package_data={
        "transforms": ["schema/*.pbtxt"],
        "pipeline": ["model_card.schema.json", "model_card.md.jinja", "report.html.jinja"],
    },
    py_modules=["local_runner", "kubeflow_runner"],
)
