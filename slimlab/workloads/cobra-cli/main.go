// cobra-cli is a small command-line program built on cobra: the CLI-framework workload.
//
//	cobra-cli greet NAME     prints "hello, NAME"
//	cobra-cli version        prints the program's and the Go runtime's version
//	cobra-cli --help         prints the help text (slimlab's functional check)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

const version = "0.1.0"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cobra-cli",
		Short:         "slimlab's cobra workload",
		Long:          "cobra-cli is slimlab's cobra workload: a CLI with two subcommands.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var shout bool
	greet := &cobra.Command{
		Use:   "greet NAME",
		Short: "Print a greeting for NAME",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line := "hello, " + args[0]
			if shout {
				line = strings.ToUpper(line) + "!"
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), line)
			return err
		},
	}
	greet.Flags().BoolVarP(&shout, "shout", "s", false, "greet in capitals")
	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "cobra-cli %s (%s)\n", version, runtime.Version())
		},
	}
	root.AddCommand(greet, versionCmd)
	return root
}

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
