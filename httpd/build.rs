fn main() {
    pd_link::link_bare_metal(pd_link::Base::ProtectionDomain);
}
