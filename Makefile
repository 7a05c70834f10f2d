# The two commands a newcomer needs:
#   make conform   build everything, load the plugin, run the default conformance matrix
#   make test      run every test (Rust unit + integration through real dlopen, then the
#                  datafusion-python host tests against the real wheel in a virtualenv)
CARGO ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
PLUGIN := $(TARGET_DIR)/release/libcodeanatomy_plugin.so
DFPLUGIN := $(TARGET_DIR)/release/dfplugin

.PHONY: build conform test

build:
	$(CARGO) build --release --workspace --lib --bins --examples

conform: build
	$(DFPLUGIN) conform $(PLUGIN) --python "$$(scripts/python-env.sh)" \
	  --report $(TARGET_DIR)/conformance.json --markdown $(TARGET_DIR)/conformance.md

test: build
	$(CARGO) test --release --workspace
	scripts/python-tests.sh
