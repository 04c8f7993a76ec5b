// Command otelcol-agentwatch is the collector distribution that runs
// collector/otelcol/agent.yaml and gateway.yaml: the upstream collector with exactly
// the components those two files name (components.go), all from one collector release.
// It is what the OpenTelemetry Collector Builder would generate, written by hand so
// that building it needs nothing but the go command and the module proxy.
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is the collector release every module of go.mod is pinned to.
const version = "0.161.0"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol-agentwatch",
		Description: "agentwatch's OpenTelemetry Collector distribution (agent and gateway tiers)",
		Version:     version,
	}
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				// file: for --config, env: for ${env:VAR} in the configs, yaml: for --set.
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
}
