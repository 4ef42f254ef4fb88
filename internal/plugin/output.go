package plugin

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
)

// printData writes v as YAML or JSON.
func printData(w io.Writer, v any, format string) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q: want yaml or json", format)
}

// proposalList is what -o yaml|json prints for proposals: a v1 List, as kubectl get does.
type proposalList struct {
	APIVersion string                    `json:"apiVersion"`
	Kind       string                    `json:"kind"`
	Items      []v1alpha1.PolicyProposal `json:"items"`
}

// printList writes proposals as a List with apiVersion and kind set on every item.
func printList(w io.Writer, items []v1alpha1.PolicyProposal, format string) error {
	l := proposalList{APIVersion: "v1", Kind: "List", Items: make([]v1alpha1.PolicyProposal, len(items))}
	for i := range items {
		l.Items[i] = *items[i].DeepCopy()
		l.Items[i].APIVersion, l.Items[i].Kind = v1alpha1.GroupVersion.String(), "PolicyProposal"
		l.Items[i].ManagedFields = nil
	}
	return printData(w, l, format)
}
