package main

import "github.com/spf13/cobra"

// completionExamples gives cobra's own completion command, and each
// shell's, an Examples section like every other command.
func completionExamples(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  source <(vpay completion bash)
  vpay completion zsh > "${fpath[1]}/_vpay"`
		for _, sh := range c.Commands() {
			sh.Example = "  vpay completion " + sh.Name() + ` > vpay-completion   # then load it as "vpay help completion ` + sh.Name() + `" says`
		}
	}
}
