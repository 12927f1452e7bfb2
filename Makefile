# make demo : set everything up and train + evaluate the toy segmentation model (about 5 min on 2 CPU cores)
# make test : set everything up and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/seg/upernet_halonet26t_1xb4-200i_toyseg-256x256.py
DEMO_DIR ?= work_dirs/demo

.PHONY: install demo test clean

install:
	VENV=$(VENV) bash tools/install.sh

demo: install
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_DIR)/iter_200.pth --work-dir $(DEMO_DIR) --show-dir $(DEMO_DIR)/pictures
	@echo "pictures of the predictions: $$(ls -d $(DEMO_DIR)/pictures/vis_data/vis_image)"

test: install
	$(PY) -m pytest tests

clean:
	rm -rf work_dirs .pytest_cache
