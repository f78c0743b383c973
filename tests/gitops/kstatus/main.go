// kstatus: what Flux's kustomize-controller and kpt decide about live objects.
// Reads a JSON object or a List (`kubectl get -o json`) on stdin and prints, per
// object, "<namespace>/<name>\t<status>\t<message>" as computed by
// sigs.k8s.io/cli-utils/pkg/kstatus/status — the library itself, not a copy of
// its rules. Built by tests/env/build-gitops-tools.sh; used by the GitOps tests.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// Decoded the way client-go decodes objects (integers stay int64, which kstatus
	// expects of metadata.generation), as a List or a single object.
	var items []unstructured.Unstructured
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a Kubernetes object or List:", err)
		os.Exit(2)
	}
	switch o := obj.(type) {
	case *unstructured.UnstructuredList:
		items = o.Items
	case *unstructured.Unstructured:
		items = []unstructured.Unstructured{*o}
	default:
		fmt.Fprintf(os.Stderr, "kstatus: unexpected %T\n", obj)
		os.Exit(2)
	}
	for i := range items {
		u := &items[i]
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: %s/%s: %v\n", u.GetNamespace(), u.GetName(), err)
			os.Exit(1)
		}
		fmt.Printf("%s/%s\t%s\t%s\n", u.GetNamespace(), u.GetName(), res.Status, res.Message)
	}
}
