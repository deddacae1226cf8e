# bpfnb set-up. Two commands:
#   make lab    install what is missing, then start JupyterLab on notebooks/
#   make test   install what is missing, then run every test
# Both are idempotent: when everything is in place they only check and go on.
#
# Variables (override on the command line, e.g. `make test VENV=/tmp/venv`):
#   VENV         the virtualenv to create and use            (.venv)
#   PYTHON       the interpreter the venv is made from       (/usr/bin/python3,
#                Debian's/Ubuntu's: the one python3-bpfcc is installed for)
#   LAB_PORT     JupyterLab's port on 127.0.0.1              (8888)
#   LAB_ARGS     extra arguments for `jupyter lab`
#   PYTEST_ARGS  arguments for pytest                        (tests)
#   DOCTOR       the command that fixes mounts and headers   (bpfnb doctor --fix)
#   OS_RELEASE   which distribution's package names to use   (/etc/os-release)
#   DIST_BCC     python3-bpfcc's package, linked into the venv (/usr/lib/python3/dist-packages/bcc)
#   NO_SUDO      1: do nothing that needs root, as for a user without sudo (empty)
#
# Without root and without sudo, `make lab` still starts JupyterLab: it skips
# what needs root (system packages, mounts, the privileged kernel), saying so,
# and installs a kernel that runs as you; notebooks 01-05 then run from the
# captures that ship with them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:

VENV ?= .venv
PYTHON ?= /usr/bin/python3
LAB_PORT ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?= tests
OS_RELEASE ?= /etc/os-release
DIST_BCC ?= /usr/lib/python3/dist-packages/bcc

venv := $(abspath $(VENV))
ROOT := $(filter 0,$(shell id -u))
# Root, or sudo for this user: without a password, or as a member of a group
# that sudo usually trusts (sudo then asks for the password).
PRIVILEGED := $(if $(NO_SUDO),,$(or $(ROOT),$(shell command -v sudo >/dev/null 2>&1 && \
    { sudo -n true 2>/dev/null || id -Gn | tr ' ' '\n' | grep -qxE 'sudo|wheel|admin'; } && echo yes)))
SUDO := $(if $(ROOT),,sudo)
# Python run through sudo must not leave root-owned __pycache__ in the user's tree.
SUDO_PY := $(if $(ROOT),,sudo env PYTHONDONTWRITEBYTECODE=1)
DOCTOR ?= $(SUDO_PY) $(venv)/bin/bpfnb doctor --fix
NO_ROOT_NOTE := without root or sudo, BPF programs cannot be loaded: notebooks 01-05 will run from their captures
# The stamp remembers the pyproject.toml the venv was last installed from.
stamp := $(venv)/.bpfnb-installed

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: lab test setup packages bcc doctor kernelspec labextension

lab: setup
	exec "$(venv)/bin/jupyter" lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
	    --ServerApp.root_dir="$(CURDIR)/notebooks" --MappingKernelManager.default_kernel_name=bpfnb \
	    $(if $(ROOT),--allow-root) $(LAB_ARGS)

test: setup
	"$(venv)/bin/pytest" $(PYTEST_ARGS)

setup: kernelspec

# Debian/Ubuntu packages: BCC for Debian's python3, bpftool, clang and libbpf's
# headers (CO-RE cells: clang-14 shares its LLVM with BCC), bpftrace (%%bpftrace
# cells), iproute2, venv, sudo (the non-root kernel launcher runs through it),
# gcc (tests build small workloads), chromium (the browser tests drive it;
# Playwright downloads no browser) and kernel headers.
# `apt-get update` only runs when something is actually missing.
packages:
	@if ! command -v apt-get >/dev/null; then
	    echo "make: this set-up knows Debian and Ubuntu only; install BCC's python3 bindings," \
	         "bpftool, bpftrace, iproute2, python3-venv and kernel headers, then run make again." >&2
	    exit 1
	fi
	. $(OS_RELEASE)
	case " $$ID $${ID_LIKE:-} " in
	    *" ubuntu "*) tools="linux-tools-common linux-tools-generic"; generic=linux-headers-generic ;;
	    *) tools=bpftool; generic=linux-headers-$$(dpkg --print-architecture) ;;
	esac
	installed() { [ "$$(dpkg-query -W -f='$${db:Status-Status}' "$$1" 2>/dev/null)" = installed ]; }
	available() { apt-cache show --no-all-versions "$$1" >/dev/null 2>&1; }
	exact=linux-headers-$$(uname -r)
	missing=""
	for p in python3-bpfcc libbpfcc $$tools clang-14 libbpf-dev bpftrace iproute2 python3-venv sudo gcc chromium; do
	    installed "$$p" || missing="$$missing $$p"
	done
	# Headers: the running kernel's own package when there is one, else the
	# distribution's generic ones (bpfnb doctor --fix links them for BCC).
	headers=""
	if ! installed "$$exact" && (available "$$exact" || ! installed "$$generic"); then headers=missing; fi
	[ -z "$$missing$$headers" ] && exit 0
	if [ -z "$(PRIVILEGED)" ]; then
	    if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null && [ ! -x "$(venv)/bin/python" ]; then
	        echo "make: the virtualenv needs python3-venv, and installing it needs root: ask an administrator" \
	             "to run 'apt-get install python3-venv', then run make again." >&2
	        exit 1
	    fi
	    echo "make: skipping the system packages$$missing$${headers:+ and kernel headers} ($(NO_ROOT_NOTE))"
	    exit 0
	fi
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	if [ -n "$$headers" ]; then
	    if available "$$exact"; then missing="$$missing $$exact"; else missing="$$missing $$generic"; fi
	fi
	echo "make: installing$$missing"
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $$missing

$(venv)/bin/python: | packages
	$(PYTHON) -m venv "$(venv)"

$(stamp): pyproject.toml | $(venv)/bin/python
	"$(venv)/bin/python" -m pip install -q -e '.[lab,test]'
	touch "$@"

# The distribution's BCC (python3-bpfcc), visible to the venv as `bcc` and
# nothing else. PyPI's "bcc" is an unrelated package and must never be used.
bcc: $(stamp)
	@src=$(DIST_BCC)
	if [ ! -f "$$src/__init__.py" ]; then
	    if [ -z "$(PRIVILEGED)" ]; then echo "make: skipping BCC: $$src is missing ($(NO_ROOT_NOTE))"; exit 0; fi
	    echo "make: $$src is missing (package python3-bpfcc)" >&2
	    exit 1
	fi
	dst=$$("$(venv)/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/bcc
	if [ -e "$$dst" ] && [ ! -L "$$dst" ]; then
	    echo "make: $$dst is not the distribution's BCC (PyPI's unrelated 'bcc'?); run" \
	         "'$(venv)/bin/pip uninstall bcc' and make again." >&2
	    exit 1
	fi
	[ "$$(readlink "$$dst" || true)" = "$$src" ] || ln -sfn "$$src" "$$dst"

doctor: bcc
ifeq ($(PRIVILEGED),)
	@echo "make: skipping 'bpfnb doctor --fix' (mounts and kernel headers need root; $(NO_ROOT_NOTE))"
else
	$(DOCTOR)
endif

kernelspec: doctor labextension
ifeq ($(PRIVILEGED),)
	@echo "make: the notebook kernel runs as $$(id -un), without the privileges BPF programs need"
	"$(venv)/bin/bpfnb" kernelspec install --prefix "$(venv)"
else
	$(SUDO_PY) "$(venv)/bin/bpfnb" kernelspec install --prefix "$(venv)"$(if $(ROOT),, --user "$$(id -un)")
endif

# The prebuilt extension that highlights %%bpf cells as C (an editable install
# does not copy it into the venv's share/).
labextension: $(stamp)
	@mkdir -p "$(venv)/share/jupyter/labextensions"
	ln -sfn "$(CURDIR)/bpfnb/labextension" "$(venv)/share/jupyter/labextensions/bpfnb-highlight"
