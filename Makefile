# The two commands a newcomer needs:
#   make conform   build everything, load the plugin, run the default conformance matrix
#   make test      run every test (Rust unit + integration through real dlopen, then the
#                  datafusion-python host tests against the real wheel in a virtualenv)
CARGO ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
PLUGIN := $(TARGET_DIR)/release/libcodeanatomy_plugin.so
DFPLUGIN := $(TARGET_DIR)/release/dfplugin
# A signing key made for this machine's builds: hosts load only plugins whose signature they
# trust, so the local build is signed with it and the matrix runs with its public key trusted.
LOCAL_KEY := $(TARGET_DIR)/dfplugin-local.key

# No test or suite case may reach a cloud metadata service: S3 clients without credentials
# would try the instance metadata address. Cases that touch s3:// use loopback endpoints.
export AWS_EC2_METADATA_DISABLED := true

.PHONY: build conform test

build:
	$(CARGO) build --release --workspace --lib --bins --examples

conform: build
	test -f $(LOCAL_KEY) || $(DFPLUGIN) keygen --out $(LOCAL_KEY)
	$(DFPLUGIN) sign $(PLUGIN) --key $(LOCAL_KEY)
	$(DFPLUGIN) conform $(PLUGIN) --trust $(LOCAL_KEY).pub --python "$$(scripts/python-env.sh)" \
	  --report $(TARGET_DIR)/conformance.json --markdown $(TARGET_DIR)/conformance.md

test: build
	$(CARGO) test --release --workspace
	scripts/python-tests.sh
