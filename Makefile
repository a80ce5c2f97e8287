# The usual entry points; each is a script of scripts/.
#   make check  gofmt, vet, staticcheck, the unit tests with -race; no root
#   make test   everything the test command runs (root: sudo make test)
#   make deb    the Debian package, dist/carpd_<version>_<arch>.deb
#               (DEB_VERSION=X make deb: version X)
#   make install  without a package (DESTDIR, PREFIX)
.PHONY: all install deb package-test check test demo
all:
	go build -o bin/carpd ./cmd/carpd
	go build -o bin/carpctl ./cmd/carpctl
install:
	scripts/install.sh
deb:
	scripts/build-deb.sh
package-test:
	scripts/package-test.sh
check:
	scripts/check.sh
test:
	scripts/test.sh
demo:
	scripts/demo.sh
