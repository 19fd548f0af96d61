package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// The parts of Kubernetes objects that the checks read. Decoding is lenient: tools/check-k8s.py validates every
// object strictly against the Kubernetes schemas.

// Object is any rendered object.
type Object struct {
	Kind     string            `json:"kind"`
	Metadata Meta              `json:"metadata"`
	Spec     json.RawMessage   `json:"spec"`
	Data     map[string]string `json:"data"`
}

// Meta is an object's or a template's metadata.
type Meta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// LabelSelector selects pods by labels.
type LabelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"matchExpressions"`
}

// Matches tells whether labels satisfy the selector (In, NotIn, Exists, DoesNotExist).
func (s *LabelSelector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		value, has := labels[e.Key]
		in := false
		for _, v := range e.Values {
			in = in || (has && v == value)
		}
		switch e.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		}
	}
	return true
}

type workloadSpec struct {
	Replicas             *int           `json:"replicas"`
	Selector             *LabelSelector `json:"selector"`
	Template             *PodTemplate   `json:"template"`
	VolumeClaimTemplates []struct {
		Metadata Meta `json:"metadata"`
	} `json:"volumeClaimTemplates"`
	JobTemplate *struct {
		Spec struct {
			Template PodTemplate `json:"template"`
		} `json:"spec"`
	} `json:"jobTemplate"`
}

// PodTemplate is a workload's pod template.
type PodTemplate struct {
	Metadata Meta    `json:"metadata"`
	Spec     PodSpec `json:"spec"`
}

// PodSpec is a pod's specification.
type PodSpec struct {
	Containers            []Container `json:"containers"`
	InitContainers        []Container `json:"initContainers"`
	Volumes               []Volume    `json:"volumes"`
	EnableServiceLinks    *bool       `json:"enableServiceLinks"`
	ShareProcessNamespace *bool       `json:"shareProcessNamespace"`
	SecurityContext       *struct {
		RunAsNonRoot   *bool `json:"runAsNonRoot"`
		SeccompProfile *struct {
			Type string `json:"type"`
		} `json:"seccompProfile"`
	} `json:"securityContext"`
}

// Container is one container of a pod.
type Container struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	ImagePullPolicy string   `json:"imagePullPolicy"`
	Command         []string `json:"command"`
	Args            []string `json:"args"`
	Env             []EnvVar `json:"env"`
	Ports           []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
	StartupProbe   *Probe `json:"startupProbe"`
	ReadinessProbe *Probe `json:"readinessProbe"`
	LivenessProbe  *Probe `json:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
}

// Probe is a container probe.
type Probe struct {
	HTTPGet *struct {
		Path string      `json:"path"`
		Port IntOrString `json:"port"`
	} `json:"httpGet"`
	TCPSocket *struct {
		Port IntOrString `json:"port"`
	} `json:"tcpSocket"`
}

// EnvVar is a container's environment variable.
type EnvVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef    *KeyRef   `json:"secretKeyRef"`
		ConfigMapKeyRef *KeyRef   `json:"configMapKeyRef"`
		FieldRef        *struct{} `json:"fieldRef"`
	} `json:"valueFrom"`
}

// KeyRef names a key of a ConfigMap or Secret.
type KeyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional"`
}

// Volume is a pod's volume.
type Volume struct {
	Name      string `json:"name"`
	ConfigMap *struct {
		Name  string `json:"name"`
		Items []struct {
			Key  string `json:"key"`
			Path string `json:"path"`
		} `json:"items"`
		Optional *bool `json:"optional"`
	} `json:"configMap"`
	Secret *struct {
		SecretName string `json:"secretName"`
		Optional   *bool  `json:"optional"`
	} `json:"secret"`
	PersistentVolumeClaim *struct {
		ClaimName string `json:"claimName"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"persistentVolumeClaim"`
	EmptyDir *struct{} `json:"emptyDir"`
}

// IntOrString is a port given by number or by name.
type IntOrString struct {
	Int    int
	String string
}

// UnmarshalJSON reads a number or a string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &v.String)
	}
	return json.Unmarshal(b, &v.Int)
}

func (v IntOrString) text() string {
	if v.String != "" {
		return v.String
	}
	return strconv.Itoa(v.Int)
}

type serviceSpec struct {
	ClusterIP string            `json:"clusterIP"`
	Selector  map[string]string `json:"selector"`
	Ports     []struct {
		Name       string       `json:"name"`
		Port       int          `json:"port"`
		TargetPort *IntOrString `json:"targetPort"`
	} `json:"ports"`
}

type policySpec struct {
	PodSelector LabelSelector `json:"podSelector"`
	Ingress     []struct {
		From []struct {
			PodSelector *LabelSelector `json:"podSelector"`
		} `json:"from"`
	} `json:"ingress"`
}

type pdbSpec struct {
	Selector LabelSelector `json:"selector"`
}

// Workload is an object that runs pods: its kind, name, replicas (if it has any) and pod template.
type Workload struct {
	Kind     string
	Name     string
	Labels   map[string]string
	Replicas *int
	Selector *LabelSelector
	Claims   []Meta // volumeClaimTemplates
	Pod      PodTemplate
}

func (w *Workload) String() string { return w.Kind + "/" + w.Name }

// Overlay is one rendered overlay, indexed.
type Overlay struct {
	Name       string
	Objects    []Object
	Workloads  []*Workload
	ConfigMaps map[string]map[string]string
	Claims     map[string]bool
	Secrets    map[string]bool
}

func newOverlay(name string, objects []Object) *Overlay {
	o := &Overlay{Name: name, Objects: objects, ConfigMaps: map[string]map[string]string{},
		Claims: map[string]bool{}, Secrets: map[string]bool{}}
	for _, object := range objects {
		switch object.Kind {
		case "ConfigMap":
			o.ConfigMaps[object.Metadata.Name] = object.Data
		case "Secret":
			o.Secrets[object.Metadata.Name] = true
		case "PersistentVolumeClaim":
			o.Claims[object.Metadata.Name] = true
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob":
			var spec workloadSpec
			if err := json.Unmarshal(object.Spec, &spec); err != nil {
				die(fmt.Sprintf("%s/%s: %s", object.Kind, object.Metadata.Name, err))
			}
			w := &Workload{Kind: object.Kind, Name: object.Metadata.Name, Labels: object.Metadata.Labels,
				Replicas: spec.Replicas, Selector: spec.Selector}
			for _, claim := range spec.VolumeClaimTemplates {
				w.Claims = append(w.Claims, claim.Metadata)
			}
			switch {
			case spec.Template != nil:
				w.Pod = *spec.Template
			case spec.JobTemplate != nil:
				w.Pod = spec.JobTemplate.Spec.Template
			}
			o.Workloads = append(o.Workloads, w)
		}
	}
	sort.Slice(o.Workloads, func(i, j int) bool { return o.Workloads[i].String() < o.Workloads[j].String() })
	return o
}

// workload returns the workload of that kind and name, or nil.
func (o *Overlay) workload(kind, name string) *Workload {
	for _, w := range o.Workloads {
		if w.Kind == kind && w.Name == name {
			return w
		}
	}
	return nil
}

// selected returns the workloads whose pods the selector matches.
func (o *Overlay) selected(selector *LabelSelector) []*Workload {
	var out []*Workload
	for _, w := range o.Workloads {
		if selector.Matches(w.Pod.Metadata.Labels) {
			out = append(out, w)
		}
	}
	return out
}

func decode(object Object, into any) {
	if err := json.Unmarshal(object.Spec, into); err != nil {
		die(fmt.Sprintf("%s/%s: %s", object.Kind, object.Metadata.Name, err))
	}
}

// env returns a container's variables: name to value, or to "secret:NAME/KEY" (and the like) for references.
func (c *Container) env() map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.ConfigMapKeyRef != nil:
			out[e.Name] = "configmap:" + e.ValueFrom.ConfigMapKeyRef.Name + "/" + e.ValueFrom.ConfigMapKeyRef.Key
		default:
			out[e.Name] = "field"
		}
	}
	return out
}
