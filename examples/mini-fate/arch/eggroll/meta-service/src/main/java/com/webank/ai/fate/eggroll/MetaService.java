package com.webank.ai.fate.eggroll;

import com.webank.ai.fate.core.Banner;

public final class MetaService {
    public static void main(String[] args) {
        System.out.println(Banner.banner("meta-service", 8590));
    }
}
