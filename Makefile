# mmvitq: `make demo` and `make test` are all the set-up a fresh machine needs.
# `make install CUDA=1` builds mmcv's and mmvitq's ops with CUDA (FORCE_CUDA=1) on a GPU machine.
VENV ?= .venv
PY := $(VENV)/bin/python
CUDA ?= 0
MAX_JOBS ?= 2
EXT_SOURCES := setup.py $(shell find mmvitq/ops/csrc -type f)
DEPS_STAMP := $(VENV)/.stamp-deps-cuda$(CUDA)
EXT_STAMP := $(VENV)/.stamp-ext-cuda$(CUDA)
FORCE_CUDA_ENV := $(if $(filter 1,$(CUDA)),FORCE_CUDA=1,)

.PHONY: install data demo test bench-ops clean

install: $(EXT_STAMP)

$(DEPS_STAMP): constraints.txt requirements.txt tools/install.sh
	CUDA=$(CUDA) MAX_JOBS=$(MAX_JOBS) bash tools/install.sh
	touch $@

# Editable install of mmvitq; setuptools compiles mmvitq._ext in place.
$(EXT_STAMP): $(DEPS_STAMP) $(EXT_SOURCES)
	@echo "[install] building mmvitq._ext (a few minutes on 2 cores)"
	MAX_JOBS=$(MAX_JOBS) $(FORCE_CUDA_ENV) $(PY) -m pip install -q -c constraints.txt --no-deps \
		--no-build-isolation -e .
	$(PY) -c "import mmvitq.ops as o; print('[install] mmvitq ops backend:', o.backend())"
	rm -f $(VENV)/.stamp-ext-cuda*
	touch $@

# Offline datasets under data/ (idempotent).
data: install
	$(PY) tools/data/prepare.py --out data

# The main job: FP32 vs the quantization methods on the full Fashion-MNIST test set (results/demo.md and demo.png):
# a few PTQ rows, LampQ, and GPLQ and VVTQ on 1/4 epoch (10 min on 2 cores). `make demo FULL=1`: every PTQ
# config at W8A8 and W4A4, GPLQ and VVTQ for one epoch (several times longer; results/demo_full.*). Uses the committed
# float ViT; `make demo TRAIN=1` trains it first.
demo: data
	$(PY) tools/demo.py $(if $(filter 1,$(TRAIN)),--train,) $(if $(filter 1,$(FULL)),--full,)

test: install
	$(PY) -m pytest tests

bench-ops: install
	$(PY) tools/bench/fake_quant.py

clean:
	rm -rf build mmvitq/_ext*.so *.egg-info
