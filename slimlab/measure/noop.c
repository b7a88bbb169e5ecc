/* slimlab-noop: a start with nothing in it. Timed like any program, its start-up is the
 * launcher's own overhead (fork, exec of a static file, exit, wait4), as hyperfine times
 * an empty shell command to calibrate its shell. */
int main(void) { return 0; }
