package com.webank.ai.fate.eggroll;

import com.webank.ai.fate.core.Banner;

public final class Egg {
    public static void main(String[] args) {
        System.out.println(Banner.banner("egg", 7888));
    }
}
