# One-command set-up: every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench lint docs docs-serve clean

# The demo photo: ../shared's three dancers when present, else a photo shipped with matplotlib.
SHARED ?= $(abspath ../shared)
SAMPLE_PHOTO = $$($(PY) -c "import matplotlib.cbook as c; print(c.get_sample_data('grace_hopper.jpg', asfileobj=False))")
DEMO_IMAGE ?= $(if $(wildcard $(SHARED)/images/p3_dance.png),$(SHARED)/images/p3_dance.png,$(SAMPLE_PHOTO))
DEMO_OUT ?= demo-out
# Weights: ../shared/weights as a mirror when present, else the zoo downloads them.
DEMO_ENV := $(if $(wildcard $(SHARED)/weights),PAFPOSE_WEIGHTS_PATH=$(SHARED)/weights,)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first: the local CPU wheel, so that "torch>=2.2" never pulls a CUDA build.
# controlnet-aux, the reference tests/test_controlnet.py compares against, without its dependencies
# (torchvision, timm...): the two files the test loads need none of them (the test says why).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps 'controlnet-aux==0.0.10'
	touch $(STAMP)

demo: $(STAMP)
	$(DEMO_ENV) $(VENV)/bin/pafpose predict "$(DEMO_IMAGE)" --out $(DEMO_OUT) --save-images --whole-body

# two processes (pytest-xdist): each test file whole on one, the Ray files on the same one (tests/conftest.py)
TEST_JOBS ?= 2

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks docs
	$(PY) -m pytest -q -n $(TEST_JOBS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/result_object.py
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/video_write.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/serve_load.py
	$(PY) benchmarks/serve_soak.py
	$(PY) benchmarks/backends.py
	$(PY) benchmarks/backend_choice.py
	$(PY) -m pip install -q --no-deps 'trackeval==1.3.0'
	$(PY) benchmarks/tracking.py
	$(PY) benchmarks/tracking.py --seeds 0-9
	$(PY) benchmarks/batch.py
	$(PY) benchmarks/wholebody.py
	$(PY) benchmarks/wholebody_fusion.py --set val2017-dev
	$(PY) benchmarks/tracking_parts.py
	$(PY) benchmarks/speed_accuracy.py

# The documentation site in site/: the gallery's pictures made by pafpose from ../shared, then
# MkDocs with warnings as errors (a broken link or a docstring it can't read fails the build).
docs: $(STAMP)
	$(PY) docs/gallery.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	$(PY) docs/gallery.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks docs

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info src/*.egg-info .pytest_cache .hypothesis test-artifacts site docs/gallery
