// Package check renders and checks promptcascade's deployment files
// (deploy/kubernetes with kustomize, docker-compose.yml with compose-go)
// offline; it is its own module so that the service's go.mod carries none of
// these tools. Run it with `make lint`.
package check
