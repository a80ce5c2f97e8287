# The usual entry points; each is a script of scripts/.
.PHONY: all install deb test demo
all:
	go build -o bin/carpd ./cmd/carpd
	go build -o bin/carpctl ./cmd/carpctl
install:
	scripts/install.sh
deb:
	scripts/build-deb.sh
test:
	scripts/test.sh
demo:
	scripts/demo.sh
