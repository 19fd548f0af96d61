package main

import (
	"encoding/json"
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// rendered is one kustomization's output: as YAML (what kubectl applies), as a JSON array, and decoded.
type rendered struct {
	yaml    []byte
	json    []byte
	objects []Object
}

// render runs kustomize on the kustomization in dir with the load restrictor off: the scripts ConfigMap is made from
// files outside k8s/.
func render(dir string) (*rendered, error) {
	options := krusty.MakeDefaultOptions()
	options.LoadRestrictions = types.LoadRestrictionsNone
	resources, err := krusty.MakeKustomizer(options).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	out := &rendered{}
	if out.yaml, err = resources.AsYaml(); err != nil {
		return nil, err
	}
	var all []json.RawMessage
	for _, resource := range resources.Resources() {
		raw, err := resource.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var object Object
		if err := json.Unmarshal(raw, &object); err != nil {
			return nil, fmt.Errorf("%s: %w", resource.CurId(), err)
		}
		all = append(all, raw)
		out.objects = append(out.objects, object)
	}
	if out.json, err = json.Marshal(all); err != nil {
		return nil, err
	}
	return out, nil
}
