package customerio

// Version is cioq's version as reported in the User-Agent header of every
// request: "cioq/<Version> (+https://github.com/cioq/cioq)". Builds may set it
// with -ldflags "-X github.com/cioq/cioq/customerio.Version=...".
var Version = "0.1.0"
