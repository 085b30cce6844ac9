fn main() {
    pds_link::link_bare_metal(pds_link::Base::ProtectionDomain);
}
