fn main() {
    df_plugin_build::emit();
}
